/// <summary>
/// customerPriceLists of the navcrm/sync/v1.0 API: one row per customer price group and
/// currency of the group's sales prices (a group without prices: one local-currency row), the
/// Dataverse price lists the CUSTPRCGRP-PRICE mapping creates. Nothing stores these rows, so
/// the page fills a temporary buffer on every request (see codeunit "NavCrm Price Lists");
/// OData $filter, $orderby, $top and by-id reads then run on that buffer.
/// </summary>
page 50103 "NavCrm Cust. Price Lists API"
{
    PageType = API;
    APIPublisher = 'navcrm';
    APIGroup = 'sync';
    APIVersion = 'v1.0';
    EntityName = 'customerPriceList';
    EntitySetName = 'customerPriceLists';
    EntityCaption = 'Customer Price List';
    EntitySetCaption = 'Customer Price Lists';
    SourceTable = "NavCrm Price List Buffer";
    SourceTableTemporary = true;
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
                field(code; Rec.Code)
                {
                    Caption = 'Code';
                }
                field(priceGroupCode; Rec."Price Group Code")
                {
                    Caption = 'Price Group Code';
                }
                field(currencyCode; Rec."Currency Code")
                {
                    Caption = 'Currency Code';
                }
                field(displayName; Rec."Display Name")
                {
                    Caption = 'Display Name';
                }
                field(priceCount; Rec."Price Count")
                {
                    Caption = 'Price Count';
                }
                field(lastModifiedDateTime; Rec."Last Modified At")
                {
                    Caption = 'Last Modified Date Time';
                }
            }
        }
    }

    trigger OnOpenPage()
    var
        NavCrmPriceLists: Codeunit "NavCrm Price Lists";
        RequestView: Text;
    begin
        // The request's filters are already on Rec: fill the buffer unfiltered, then put them back.
        RequestView := Rec.GetView();
        Rec.Reset();
        NavCrmPriceLists.FillPriceLists(Rec);
        Rec.SetView(RequestView);
    end;
}
