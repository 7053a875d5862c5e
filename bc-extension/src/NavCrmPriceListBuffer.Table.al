/// <summary>
/// One customer price list (price group and currency) as the customerPriceLists API page shows
/// it. Temporary only: the rows are computed per request from customer price groups and their
/// price list lines, never stored.
/// </summary>
table 50100 "NavCrm Price List Buffer"
{
    Caption = 'NAV CRM Price List Buffer';
    TableType = Temporary;
    DataClassification = SystemMetadata;

    fields
    {
        field(1; Code; Code[21])
        {
            Caption = 'Code';
        }
        field(2; "Price Group Code"; Code[20])
        {
            Caption = 'Price Group Code';
        }
        field(3; "Currency Code"; Code[10])
        {
            Caption = 'Currency Code';
        }
        field(4; "Display Name"; Text[250])
        {
            Caption = 'Display Name';
        }
        field(5; "Price Count"; Integer)
        {
            Caption = 'Price Count';
        }
        field(6; "Last Modified At"; DateTime)
        {
            Caption = 'Last Modified At';
        }
    }

    keys
    {
        key(PK; Code)
        {
            Clustered = true;
        }
        key(PriceGroup; "Price Group Code", "Currency Code")
        {
        }
    }
}
