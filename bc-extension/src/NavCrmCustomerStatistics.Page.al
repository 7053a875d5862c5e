/// <summary>
/// customerStatistics of the navcrm/sync/v1.0 API: the figures of the customer statistics
/// FactBox, read by the CUSTOMER STATISTICS mapping for coupled customers (filtered on
/// customerNumber, read in full on every run: ledger postings do not change the customer's
/// SystemModifiedAt, so the set serves no lastModifiedDateTime).
///
/// The standard API v2.0 set customerFinancialDetails serves balance, totalSalesExcludingTax
/// and overdueAmount, but not outstanding orders, shipped-not-invoiced or outstanding invoices,
/// hence this page. All amounts are in local currency (the "(LCY)" FlowFields).
/// </summary>
page 50104 "NavCrm Customer Statistics API"
{
    PageType = API;
    APIPublisher = 'navcrm';
    APIGroup = 'sync';
    APIVersion = 'v1.0';
    EntityName = 'customerStatistic';
    EntitySetName = 'customerStatistics';
    EntityCaption = 'Customer Statistic';
    EntitySetCaption = 'Customer Statistics';
    SourceTable = Customer;
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
                field(customerNumber; Rec."No.")
                {
                    Caption = 'Customer No.';
                }
                field(customerName; Rec.Name)
                {
                    Caption = 'Customer Name';
                }
                field(balance; Rec."Balance (LCY)")
                {
                    Caption = 'Balance';
                }
                field(outstandingOrders; Rec."Outstanding Orders (LCY)")
                {
                    Caption = 'Outstanding Orders';
                }
                field(shippedNotInvoiced; Rec."Shipped Not Invoiced (LCY)")
                {
                    Caption = 'Shipped Not Invoiced';
                }
                field(outstandingInvoices; Rec."Outstanding Invoices (LCY)")
                {
                    Caption = 'Outstanding Invoices';
                }
                field(overdueAmount; OverdueAmount)
                {
                    Caption = 'Overdue Amount';
                    AutoFormatType = 1;
                }
                field(totalSales; Rec."Sales (LCY)")
                {
                    Caption = 'Total Sales';
                }
            }
        }
    }

    var
        OverdueAmount: Decimal;

    trigger OnAfterGetRecord()
    begin
        // Open entries due before the work date, as the customer statistics FactBox shows them.
        OverdueAmount := Rec.CalcOverdueBalance();
    end;
}
