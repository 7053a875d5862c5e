/// <summary>
/// The price list rule the nav-crm-ops mappings rely on (nav_crm_ops/sandbox/price_lists.py):
/// a customer price group becomes one Dataverse price list per currency of its sales prices,
/// coded GROUP for local-currency prices and GROUP-CURRENCY otherwise. Kept in one place so the
/// salesPrices.priceListCode values and the customerPriceLists codes always agree.
/// </summary>
codeunit 50100 "NavCrm Price Lists"
{
    Access = Internal;

    var
        DisplayNameTxt: Label '%1 (%2)', Comment = '%1 = price group description (or code), %2 = currency code', Locked = true;
        IdSeedTxt: Label 'customerPriceLists/%1', Locked = true;

    /// <summary>The price list a sales price belongs to; blank unless it is a price group's price.</summary>
    procedure SalesPriceListCode(SourceType: Enum "Price Source Type"; SourceNo: Code[20]; CurrencyCode: Code[10]): Code[21]
    begin
        if (SourceType <> SourceType::"Customer Price Group") or (SourceNo = '') then
            exit('');
        if CurrencyCode = '' then
            exit(SourceNo);
        exit(CopyStr(SourceNo + '-' + CurrencyCode, 1, 21));
    end;

    /// <summary>Fills the buffer with one row per price group and currency of its active item prices.</summary>
    procedure FillPriceLists(var PriceListBuffer: Record "NavCrm Price List Buffer" temporary)
    var
        CustomerPriceGroup: Record "Customer Price Group";
        GeneralLedgerSetup: Record "General Ledger Setup";
    begin
        PriceListBuffer.Reset();
        PriceListBuffer.DeleteAll();
        GeneralLedgerSetup.Get();
        if CustomerPriceGroup.FindSet() then
            repeat
                AddGroupLists(PriceListBuffer, CustomerPriceGroup, GeneralLedgerSetup."LCY Code");
            until CustomerPriceGroup.Next() = 0;
    end;

    local procedure AddGroupLists(var PriceListBuffer: Record "NavCrm Price List Buffer" temporary; CustomerPriceGroup: Record "Customer Price Group"; LcyCode: Code[10])
    var
        PriceListLine: Record "Price List Line";
    begin
        PriceListLine.SetLoadFields("Currency Code");
        PriceListLine.SetRange("Price Type", Enum::"Price Type"::Sale);
        PriceListLine.SetRange("Source Type", Enum::"Price Source Type"::"Customer Price Group");
        PriceListLine.SetRange("Source No.", CustomerPriceGroup.Code);
        PriceListLine.SetRange("Asset Type", Enum::"Price Asset Type"::Item);
        PriceListLine.SetFilter("Amount Type", '%1|%2', Enum::"Price Amount Type"::Price, Enum::"Price Amount Type"::Any);
        PriceListLine.SetRange(Status, Enum::"Price Status"::Active);
        if PriceListLine.FindSet() then
            repeat
                AddPrice(PriceListBuffer, CustomerPriceGroup, PriceListLine."Currency Code", PriceListLine.SystemModifiedAt, LcyCode);
            until PriceListLine.Next() = 0;

        PriceListBuffer.SetRange("Price Group Code", CustomerPriceGroup.Code);
        if PriceListBuffer.IsEmpty() then
            InsertList(PriceListBuffer, CustomerPriceGroup, '', LcyCode);
        PriceListBuffer.SetRange("Price Group Code");
    end;

    local procedure AddPrice(var PriceListBuffer: Record "NavCrm Price List Buffer" temporary; CustomerPriceGroup: Record "Customer Price Group"; CurrencyCode: Code[10]; ModifiedAt: DateTime; LcyCode: Code[10])
    begin
        if not PriceListBuffer.Get(SalesPriceListCode(Enum::"Price Source Type"::"Customer Price Group", CustomerPriceGroup.Code, CurrencyCode)) then
            InsertList(PriceListBuffer, CustomerPriceGroup, CurrencyCode, LcyCode);
        PriceListBuffer."Price Count" += 1;
        if ModifiedAt > PriceListBuffer."Last Modified At" then
            PriceListBuffer."Last Modified At" := ModifiedAt;
        PriceListBuffer.Modify();
    end;

    local procedure InsertList(var PriceListBuffer: Record "NavCrm Price List Buffer" temporary; CustomerPriceGroup: Record "Customer Price Group"; CurrencyCode: Code[10]; LcyCode: Code[10])
    var
        ShownCurrency: Code[10];
        GroupLabel: Text;
    begin
        // A local-currency list shows the LCY code, so the client finds its currency by ISO code.
        ShownCurrency := CurrencyCode;
        if ShownCurrency = '' then
            ShownCurrency := LcyCode;
        GroupLabel := CustomerPriceGroup.Description;
        if GroupLabel = '' then
            GroupLabel := CustomerPriceGroup.Code;

        PriceListBuffer.Init();
        PriceListBuffer.Code := SalesPriceListCode(Enum::"Price Source Type"::"Customer Price Group", CustomerPriceGroup.Code, CurrencyCode);
        PriceListBuffer."Price Group Code" := CustomerPriceGroup.Code;
        PriceListBuffer."Currency Code" := ShownCurrency;
        PriceListBuffer."Display Name" := CopyStr(StrSubstNo(DisplayNameTxt, GroupLabel, ShownCurrency), 1, MaxStrLen(PriceListBuffer."Display Name"));
        PriceListBuffer."Price Count" := 0;
        PriceListBuffer."Last Modified At" := CustomerPriceGroup.SystemModifiedAt;
        PriceListBuffer.SystemId := StableId(PriceListBuffer.Code);
        PriceListBuffer.Insert(false, true);
    end;

    /// <summary>
    /// The same id on every request for the same list code, so the sync can couple a computed
    /// list like a stored record (a new GUID per request would break every coupling).
    /// </summary>
    procedure StableId(ListCode: Code[21]): Guid
    var
        CryptographyManagement: Codeunit "Cryptography Management";
        HashAlgorithmType: Option MD5,SHA1,SHA256,SHA384,SHA512;
        Hash: Text;
        Id: Guid;
    begin
        Hash := LowerCase(CryptographyManagement.GenerateHash(StrSubstNo(IdSeedTxt, ListCode), HashAlgorithmType::MD5));
        Evaluate(Id, '{' + CopyStr(Hash, 1, 8) + '-' + CopyStr(Hash, 9, 4) + '-' + CopyStr(Hash, 13, 4) + '-' + CopyStr(Hash, 17, 4) + '-' + CopyStr(Hash, 21, 12) + '}');
        exit(Id);
    end;
}
