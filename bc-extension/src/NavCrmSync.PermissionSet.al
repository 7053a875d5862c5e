/// <summary>
/// What the nav-crm-ops sync needs to call the navcrm/sync/v1.0 API: read access to the tables
/// behind the five API pages (and to the ledger and sales lines their FlowFields sum), insert
/// and modify on the two writable sets, and execute on the extension's objects. Assign it to
/// the Microsoft Entra application the sync authenticates as.
/// </summary>
permissionset 50100 "NAVCRM SYNC"
{
    Assignable = true;
    Caption = 'NAV CRM Ops sync API';

    Permissions =
        tabledata Resource = RIM,
        tabledata "Resource Unit of Measure" = RIM,
        tabledata "Customer Price Group" = RIM,
        tabledata "Price List Header" = R,
        tabledata "Price List Line" = R,
        tabledata Customer = R,
        tabledata "Cust. Ledger Entry" = R,
        tabledata "Detailed Cust. Ledg. Entry" = R,
        tabledata "Sales Header" = R,
        tabledata "Sales Line" = R,
        tabledata "General Ledger Setup" = R,
        table "NavCrm Price List Buffer" = X,
        codeunit "NavCrm Price Lists" = X,
        page "NavCrm Resources API" = X,
        page "NavCrm Cust. Price Groups API" = X,
        page "NavCrm Sales Prices API" = X,
        page "NavCrm Cust. Price Lists API" = X,
        page "NavCrm Customer Statistics API" = X;
}
