/// <summary>
/// salesPrices of the navcrm/sync/v1.0 API: item sales prices in the shape of the legacy
/// table 7002 "Sales Price" (itemNumber, salesType, salesCode ...), which the nav-crm-ops
/// sandbox emulates and the SALESPRC-PRODUCTPRICE mapping reads.
///
/// Why table 7001 "Price List Line" and not 7002: a current Business Central online tenant
/// runs the new sales pricing experience (the default for new customers since 2020 release
/// wave 2; switching it on is irreversible), where prices live in price list lines and table
/// 7002 is an obsolete, empty leftover. The view keeps the lines the legacy table could hold:
/// active sales prices (not discounts) of items for the four legacy sales types.
///
/// Read-only: price list lines belong to a price list header (status, approval, editing of
/// active lists), so prices are maintained in Business Central; every mapping on this set
/// only reads it.
/// </summary>
page 50102 "NavCrm Sales Prices API"
{
    PageType = API;
    APIPublisher = 'navcrm';
    APIGroup = 'sync';
    APIVersion = 'v1.0';
    EntityName = 'salesPrice';
    EntitySetName = 'salesPrices';
    EntityCaption = 'Sales Price';
    EntitySetCaption = 'Sales Prices';
    SourceTable = "Price List Line";
    SourceTableView = where("Price Type" = const(Sale),
                            "Asset Type" = const(Item),
                            "Amount Type" = filter(Price | Any),
                            Status = const(Active),
                            "Source Type" = filter("All Customers" | Customer | "Customer Price Group" | Campaign));
    ODataKeyFields = SystemId;
    Editable = false;
    InsertAllowed = false;
    ModifyAllowed = false;
    DeleteAllowed = false;
    DataAccessIntent = ReadOnly;
    Extensible = false;

    layout
    {
        area(Content)
        {
            repeater(Records)
            {
                field(id; Rec.SystemId)
                {
                    Caption = 'Id';
                }
                field(itemNumber; Rec."Asset No.")
                {
                    Caption = 'Item No.';
                }
                field(salesType; Rec."Source Type")
                {
                    Caption = 'Sales Type';
                }
                field(salesCode; Rec."Source No.")
                {
                    Caption = 'Sales Code';
                }
                field(currencyCode; Rec."Currency Code")
                {
                    Caption = 'Currency Code';
                }
                field(startingDate; Rec."Starting Date")
                {
                    Caption = 'Starting Date';
                }
                field(endingDate; Rec."Ending Date")
                {
                    Caption = 'Ending Date';
                }
                field(unitOfMeasureCode; Rec."Unit of Measure Code")
                {
                    Caption = 'Unit of Measure Code';
                }
                field(minimumQuantity; Rec."Minimum Quantity")
                {
                    Caption = 'Minimum Quantity';
                }
                field(unitPrice; Rec."Unit Price")
                {
                    Caption = 'Unit Price';
                }
                field(priceListCode; PriceListCode)
                {
                    Caption = 'Price List Code';
                    ToolTip = 'The customerPriceLists entry this price belongs to: the group code for local-currency prices, <GROUP>-<CURRENCY> otherwise; blank unless the price is a customer price group''s.';
                }
                field(lastModifiedDateTime; Rec.SystemModifiedAt)
                {
                    Caption = 'Last Modified Date Time';
                }
            }
        }
    }

    var
        NavCrmPriceLists: Codeunit "NavCrm Price Lists";
        PriceListCode: Code[21];

    trigger OnAfterGetRecord()
    begin
        PriceListCode := NavCrmPriceLists.SalesPriceListCode(Rec."Source Type", Rec."Source No.", Rec."Currency Code");
    end;
}
