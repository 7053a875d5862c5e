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
    assert normalize_error_message("Internal_ERR123 failed") == "Internal_ERR123 failed"


def test_record_numbers_with_a_prefix_group_together() -> None:
    a = normalize_error_message("Customer C0081323 cannot be posted: order SO-1001 is open")
    b = normalize_error_message("Customer C0000007 cannot be posted: order SO-2002 is open")
    assert a == b == "Customer <no> cannot be posted: order <no> is open"
    assert normalize_error_message("HTTP 400 Application_StringExceededLength") == \
        "HTTP <n> Application_StringExceededLength"


def _guids(count: int, seed: int) -> list[str]:
    return [f"{seed + n:08x}-1111-2222-3333-{n:012x}" for n in range(count)]


def test_lists_of_ids_are_one_cause_whatever_their_length() -> None:
    """The same error naming 1, 3 or 40 records (GUID lists, quoted code lists, a "more"
    tail) is one group; a different error stays apart."""
    template = "Duplicate detection: the account matches existing records {ids}."
    one = normalize_error_message(template.format(ids=_guids(1, 1)[0]))
    three = normalize_error_message(template.format(ids=", ".join(_guids(3, 7))))
    forty = normalize_error_message(template.format(ids=", ".join(_guids(40, 99))))
    listed = normalize_error_message(template.format(
        ids="[" + "; ".join("{" + g + "}" for g in _guids(5, 3)) + "] (and 35 more)"))
    assert one == three == forty == listed == (
        "Duplicate detection: the account matches existing records <guid>.")
    codes = [normalize_error_message(f"salespeople {codes} have no matching CRM user")
             for codes in ("'BD'", "'BD', 'PS' and 'JR'", "'AH', 'BD', 'PS', 'JR', 'MH'")]
    assert codes[0] == codes[1] == codes[2] == "salespeople '<value>' have no matching CRM user"
    assert normalize_error_message("no CRM user for salesperson 'BD'") != codes[0]
