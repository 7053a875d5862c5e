"""A coupled account's sales activity in CRM (opportunities, cases, quotes), read-only.

Why: the reference integration lets Business Central users see a coupled customer's CRM
activity without leaving BC. This is a read of three Dataverse tables filtered by the account's
id; nothing is written and no sync state is involved. The coupling panel shows it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import polars as pl

from ..connectors.dataverse import Dataverse
from ..connectors.odata import F

__all__ = ["RELATED_TABLES", "RelatedTable", "related_records"]


@dataclass(frozen=True)
class RelatedTable:
    title: str
    entity_set: str
    columns: tuple[str, ...]


RELATED_TABLES = (
    RelatedTable("Opportunities", "opportunities",
                 ("name", "estimatedvalue", "estimatedclosedate", "closeprobability",
                  "statecode")),
    RelatedTable("Cases", "incidents", ("ticketnumber", "title", "prioritycode", "statecode")),
    RelatedTable("Quotes", "quotes",
                 ("quotenumber", "name", "totalamount", "effectiveto", "statecode")),
)
"""What is shown, per table: the columns people recognise."""


def related_records(dataverse: Dataverse, account_id: str, *, top: int = 50
                    ) -> dict[str, pl.DataFrame]:
    """Opportunities, cases and quotes whose customer is ``account_id`` (title -> rows)."""
    customer = F("_customerid_value").eq(uuid.UUID(account_id))
    return {table.title: dataverse.read(table.entity_set, select=list(table.columns),
                                        filter=customer, top=top)
            for table in RELATED_TABLES}
