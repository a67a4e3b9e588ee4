<#
.SYNOPSIS
    Writes the Exchange Online part of a dsguard evidence bundle with the
    ExchangeOnlineManagement module, for admins who prefer PowerShell to `dsguard collect`.

.DESCRIPTION
    Runs the same read-only Get-* cmdlets as `dsguard collect` (docs/collect.md) and writes
    each result to BUNDLE\exchange\<kind>.json in the same shape: the JSON array that
    `ConvertTo-Json -InputObject @(...) -Depth 10` writes (`[]` when a cmdlet returns
    nothing), UTF-8 without a BOM. Each file is written to <file>.part and renamed, so a
    stopped run never leaves half a file; run it again to redo what failed.

    A cmdlet that is not available in the tenant is reported and its file left absent
    ("not collected"; the posture checks report MANUAL for it). Nothing is changed in the
    tenant: only Get-* cmdlets are loaded and run.

    Graph (graph/service_principals.json), mail telemetry, sign-ins and DNS are not written
    by this script; `dsguard collect --skip exchange` adds them to the same bundle.

.PARAMETER Out
    The bundle folder. Created if missing.

.PARAMETER Organization
    The tenant's initial domain (contoso.onmicrosoft.com), for app-only sign-in.

.PARAMETER AppId
    Application (client) id for app-only sign-in (needs Exchange.ManageAsApp and a read role).

.PARAMETER CertificateThumbprint
    Thumbprint of the app's certificate in the current user's or machine's store.

.PARAMETER CertificateFilePath
    Path of the app's .pfx certificate (prompted for its password).

.PARAMETER ManagedIdentity
    Sign in with the host's managed identity (Azure Automation, Azure VM).

.PARAMETER UseExistingSession
    Do not connect: use the Exchange Online session already open in this PowerShell.

.EXAMPLE
    ./collect-exchange.ps1 -Out .\bundle
    Signs in interactively as a person holding a read role (Global Reader is enough).

.EXAMPLE
    ./collect-exchange.ps1 -Out .\bundle -AppId 00000000-0000-0000-0000-000000000000 `
        -CertificateThumbprint 0123456789ABCDEF0123456789ABCDEF01234567 `
        -Organization contoso.onmicrosoft.com
#>
[CmdletBinding(DefaultParameterSetName = 'Interactive')]
param(
    [Parameter(Mandatory = $true)] [string] $Out,
    [Parameter(ParameterSetName = 'Thumbprint', Mandatory = $true)]
    [Parameter(ParameterSetName = 'File', Mandatory = $true)]
    [Parameter(ParameterSetName = 'ManagedIdentity', Mandatory = $true)]
    [string] $Organization,
    [Parameter(ParameterSetName = 'Thumbprint', Mandatory = $true)]
    [Parameter(ParameterSetName = 'File', Mandatory = $true)]
    [string] $AppId,
    [Parameter(ParameterSetName = 'Thumbprint', Mandatory = $true)] [string] $CertificateThumbprint,
    [Parameter(ParameterSetName = 'File', Mandatory = $true)] [string] $CertificateFilePath,
    [Parameter(ParameterSetName = 'ManagedIdentity', Mandatory = $true)] [switch] $ManagedIdentity,
    [Parameter(ParameterSetName = 'Existing', Mandatory = $true)] [switch] $UseExistingSession
)

Set-StrictMode -Version 3
$ErrorActionPreference = 'Stop'

# Kind (the bundle file stem, src/dsguard/posture/kinds.py), cmdlet and parameters; the same
# list, in the same order, as CMDLETS in src/dsguard/collect/exchange.py (a test keeps them
# in step).
$Cmdlets = @(
    @{ Kind = 'organization_config'; Cmdlet = 'Get-OrganizationConfig'; Parameters = @{} }
    @{ Kind = 'transport_config'; Cmdlet = 'Get-TransportConfig'; Parameters = @{} }
    @{ Kind = 'accepted_domains'; Cmdlet = 'Get-AcceptedDomain'; Parameters = @{} }
    @{ Kind = 'inbound_connectors'; Cmdlet = 'Get-InboundConnector'; Parameters = @{} }
    @{ Kind = 'transport_rules'; Cmdlet = 'Get-TransportRule'; Parameters = @{} }
    @{ Kind = 'hosted_connection_filter_policy'; Cmdlet = 'Get-HostedConnectionFilterPolicy'; Parameters = @{} }
    @{ Kind = 'hosted_content_filter_policy'; Cmdlet = 'Get-HostedContentFilterPolicy'; Parameters = @{} }
    @{ Kind = 'anti_phish_policies'; Cmdlet = 'Get-AntiPhishPolicy'; Parameters = @{} }
    @{ Kind = 'anti_phish_rules'; Cmdlet = 'Get-AntiPhishRule'; Parameters = @{} }
    @{ Kind = 'dkim_signing_config'; Cmdlet = 'Get-DkimSigningConfig'; Parameters = @{} }
    @{ Kind = 'cas_mailbox'; Cmdlet = 'Get-CASMailbox'; Parameters = @{ ResultSize = 'Unlimited'; Filter = 'SmtpClientAuthenticationDisabled -eq $false' } }
    @{ Kind = 'tenant_allow_block_list_spoof_items'; Cmdlet = 'Get-TenantAllowBlockListSpoofItems'; Parameters = @{ SpoofType = 'Internal' } }
    @{ Kind = 'arc_config'; Cmdlet = 'Get-ArcConfig'; Parameters = @{} }
    @{ Kind = 'external_in_outlook'; Cmdlet = 'Get-ExternalInOutlook'; Parameters = @{} }
    @{ Kind = 'management_role_assignments'; Cmdlet = 'Get-ManagementRoleAssignment'; Parameters = @{ RoleAssigneeType = 'ServicePrincipal' } }
    @{ Kind = 'application_access_policies'; Cmdlet = 'Get-ApplicationAccessPolicy'; Parameters = @{} }
    @{ Kind = 'outbound_connectors'; Cmdlet = 'Get-OutboundConnector'; Parameters = @{} }
    @{ Kind = 'cas_mailbox_plans'; Cmdlet = 'Get-CASMailboxPlan'; Parameters = @{} }
    @{ Kind = 'management_scopes'; Cmdlet = 'Get-ManagementScope'; Parameters = @{} }
    @{ Kind = 'exchange_service_principals'; Cmdlet = 'Get-ServicePrincipal'; Parameters = @{} }
)

if ($PSCmdlet.ParameterSetName -ne 'Existing') {
    Import-Module ExchangeOnlineManagement -MinimumVersion 3.0.0
    $connect = @{ ShowBanner = $false; CommandName = @($Cmdlets | ForEach-Object { $_.Cmdlet }) }
    switch ($PSCmdlet.ParameterSetName) {
        'Thumbprint' {
            $connect += @{ AppId = $AppId; CertificateThumbprint = $CertificateThumbprint; Organization = $Organization }
        }
        'File' {
            $password = Read-Host -AsSecureString -Prompt "Password of $CertificateFilePath"
            $connect += @{ AppId = $AppId; CertificateFilePath = $CertificateFilePath; CertificatePassword = $password; Organization = $Organization }
        }
        'ManagedIdentity' { $connect += @{ ManagedIdentity = $true; Organization = $Organization } }
    }
    Connect-ExchangeOnline @connect
}

$bundle = $ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath($Out)
$dir = Join-Path $bundle 'exchange'
New-Item -ItemType Directory -Force -Path $dir | Out-Null
$utf8 = New-Object System.Text.UTF8Encoding($false)
$failed = @()

foreach ($c in $Cmdlets) {
    $file = Join-Path $dir ($c.Kind + '.json')
    $params = $c.Parameters
    try {
        $objects = @(& $c.Cmdlet @params -ErrorAction Stop)
    }
    catch {
        Write-Warning ("{0} was not collected: {1}" -f $c.Cmdlet, $_.Exception.Message)
        $failed += $c.Cmdlet
        continue
    }
    $json = ConvertTo-Json -InputObject $objects -Depth 10
    $tmp = $file + '.part'
    [System.IO.File]::WriteAllText($tmp, $json + "`n", $utf8)
    Move-Item -Force -LiteralPath $tmp -Destination $file
    Write-Host ("{0,-36} {1,7} objects  exchange/{2}.json" -f $c.Cmdlet, $objects.Count, $c.Kind)
}

if ($failed.Count -gt 0) {
    Write-Warning ("not collected: {0}; rerun to try again" -f ($failed -join ', '))
    exit 2
}
