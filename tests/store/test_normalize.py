"""Error messages normalize so that the same kind of error forms one group."""

from __future__ import annotations

from nav_crm_ops.store import normalize_error_message


def test_ids_quoted_values_and_numbers_are_replaced() -> None:
    a = normalize_error_message(
        "The Customer does not exist. Identification fields and values: No.='10000'  "
        "CorrelationId:  0b9c5e9e-1111-2222-3333-444444444444.")
    b = normalize_error_message(
        "The Customer does not exist. Identification fields and values: No.='C00042'  "
        "CorrelationId:  7f3c5e9e-aaaa-bbbb-cccc-444444444444.")
    assert a == b == ("The Customer does not exist. Identification fields and values: "
                      "No.='<value>' CorrelationId: <id>")


def test_service_codes_are_kept_and_distinct_errors_stay_distinct() -> None:
    length = normalize_error_message('0x80044331 length of "name" exceeded 160')
    missing = normalize_error_message("0x80040217 account With Id = {11111111-2222-3333-4444-555555555555} Does Not Exist")
    assert length == '0x80044331 length of "<value>" exceeded <n>'
    assert missing == "0x80040217 account With Id = <guid> Does Not Exist"
    assert normalize_error_message("retry in 12.5 s") == normalize_error_message("retry in 3 s")
    assert normalize_error_message("ABC123 failed") == "ABC123 failed"
