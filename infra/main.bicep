// Dynamics 365 Sales connector: a Flex Consumption function app (Node.js) with a managed identity, its
// storage (shared keys off), Key Vault for the Dataverse credentials, Log Analytics + Application Insights
// (Entra ID auth), the role assignments the identity needs, and optional App Service authentication.
// Deploy: az deployment group create -g <group> -f infra/main.bicep -p @infra/main.parameters.json
targetScope = 'resourceGroup'

@description('Azure region of every resource (must offer Flex Consumption).')
param location string = resourceGroup().location

@description('Prefix of the resource names; a hash of the resource group makes them unique.')
@minLength(3)
@maxLength(11)
param namePrefix string = 'd365conn'

@description('Tags for every resource.')
param tags object = {}

@description('Node.js version of the function app (Node.js 20 is past its end of life).')
@allowed(['22'])
param nodeVersion string = '22'

@description('Changes every generated resource name. Set it to redeploy into a re-created resource group while the old Key Vault name is still held by soft delete (90 days).')
param nameSalt string = ''

@description('Most instances Flex Consumption may scale out to.')
param maximumInstanceCount int = 40

@description('Memory per instance (MB).')
@allowed([512, 2048, 4096])
param instanceMemoryMB int = 2048

// V8's old space sized to the instance, as AWS Lambda's Node.js runtime does to its functions (Functions leaves
// Node.js to size it from the host's memory). Half the instance: the Functions host, the young generation, code
// and buffers share the rest. It also keeps V8 from letting the heap grow to four times what a run holds
// between full collections (its growing factor for heaps of 2 GiB and more). bench/sync.ts runs its workers
// with the same argument, read from node-worker.json (where the default instance size is too).
var nodeWorker = loadJsonContent('node-worker.json')

// The service's settings; names, rules and defaults are in src/lib/config.ts (README "Settings").
@description('Extra Dataverse hosts the service may call besides Dynamics 365 online (comma-separated).')
param dataverseAllowedHosts string = ''

@description('Entra ID authority host for signing in to Dataverse (this cloud\'s login endpoint by default).')
param authorityHost string = environment().authentication.loginEndpoint

@description('Tenant whose Entra ID access tokens identify ERP users when App Service authentication is off (empty: none).')
param callerTokenTenantId string = ''

@description('Audience those tokens must carry, e.g. api://<client id> (empty: none).')
param callerTokenAudience string = ''

@description('Unique name of the CRM integration solution.')
param integrationSolutionName string = 'MicrosoftDynamicsNavIntegration'

@description('Default ERP web client URL written to CRM (empty: none).')
param erpWebUrlDefault string = ''

@description('The ERP local currency code that must match the CRM base currency (empty: not checked).')
param erpLocalCurrency string = ''

@description('NCRONTAB schedule of the sync timers.')
param syncSchedule string = '0 */1 * * * *'

@description('Schedules of single jobs that differ from syncSchedule, by job, e.g. { "ITEM-PRODUCT": "0 */5 * * * *" }.')
param jobSchedules object = {}

@description('Rows per Dataverse bulk request.')
@minValue(1)
@maxValue(1000)
param syncBatchSize int = 500

@description('A cap on Dataverse requests in flight per run: a run sends as many as x-ms-dop-hint recommends, never more than this.')
@minValue(1)
@maxValue(52)
param syncMaxParallel int = 52

@description('Seconds a sync run may take before it stops and leaves the rest to the next run.')
param syncTimeBudgetSeconds int = 540

@description('Turn on App Service authentication (Entra ID) so ERP users can sign in (needed when users must map to CRM users).')
param enableAppServiceAuthentication bool = false

@description('Client id of the Entra app registration for App Service authentication.')
param authClientId string = ''

@description('Tenant of that app registration.')
param authTenantId string = subscription().tenantId

var suffix = uniqueString(resourceGroup().id, nameSalt)

// App Service authentication with no app registration would accept the audiences 'api://' and '': refuse to deploy it.
var checkedAuthClientId = enableAppServiceAuthentication && empty(trim(authClientId))
  ? fail('authClientId is required when enableAppServiceAuthentication is true.')
  : authClientId
var appName = '${namePrefix}-${suffix}'
var storageAccountName = take(toLower(replace('${namePrefix}${suffix}', '-', '')), 24)
var keyVaultName = take('${namePrefix}-kv-${suffix}', 24)

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    location: location
    namePrefix: appName
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    location: location
    storageAccountName: storageAccountName
    deploymentContainerName: 'app-package'
    tags: tags
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyVault'
  params: {
    location: location
    keyVaultName: keyVaultName
    tags: tags
  }
}

// Every app setting, in one place; the test suite checks it against src/lib/config.ts. No secret and no
// storage connection string: storage, Key Vault and telemetry are reached with the managed identity.
var appSettings = {
  AzureWebJobsStorage__blobServiceUri: storage.outputs.blobEndpoint
  AzureWebJobsStorage__queueServiceUri: storage.outputs.queueEndpoint
  AzureWebJobsStorage__tableServiceUri: storage.outputs.tableEndpoint
  APPLICATIONINSIGHTS_CONNECTION_STRING: monitoring.outputs.connectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD'
  KEY_VAULT_URL: keyVault.outputs.uri
  DATAVERSE_ALLOWED_HOSTS: dataverseAllowedHosts
  AUTHORITY_HOST: authorityHost
  CALLER_TOKEN_TENANT_ID: callerTokenTenantId
  CALLER_TOKEN_AUDIENCE: callerTokenAudience
  INTEGRATION_SOLUTION_NAME: integrationSolutionName
  ERP_WEB_URL_DEFAULT: erpWebUrlDefault
  ERP_LOCAL_CURRENCY: erpLocalCurrency
  SYNC_SCHEDULE: syncSchedule
  SYNC_SCHEDULE_SALESPEOPLE: jobSchedules.?SALESPEOPLE ?? syncSchedule
  SYNC_SCHEDULE_CURRENCY: jobSchedules.?CURRENCY ?? syncSchedule
  SYNC_SCHEDULE_UNIT_OF_MEASURE: jobSchedules[?'UNIT OF MEASURE'] ?? syncSchedule
  SYNC_SCHEDULE_CUSTOMER: jobSchedules.?CUSTOMER ?? syncSchedule
  SYNC_SCHEDULE_CONTACT: jobSchedules.?CONTACT ?? syncSchedule
  SYNC_SCHEDULE_ITEM_PRODUCT: jobSchedules[?'ITEM-PRODUCT'] ?? syncSchedule
  SYNC_SCHEDULE_RESOURCE_PRODUCT: jobSchedules[?'RESOURCE-PRODUCT'] ?? syncSchedule
  SYNC_SCHEDULE_CUSTPRCGRP_PRICE: jobSchedules[?'CUSTPRCGRP-PRICE'] ?? syncSchedule
  SYNC_SCHEDULE_POSTEDSALESINV_INV: jobSchedules[?'POSTEDSALESINV-INV'] ?? syncSchedule
  SYNC_SCHEDULE_SALESPRC_PRODPRICE: jobSchedules[?'SALESPRC-PRODPRICE'] ?? syncSchedule
  SYNC_SCHEDULE_POSTEDSALESLINE_INV: jobSchedules[?'POSTEDSALESLINE-INV'] ?? syncSchedule
  SYNC_SCHEDULE_CUSTOMER_STATISTICS: jobSchedules[?'CUSTOMER STATISTICS'] ?? syncSchedule
  SYNC_SCHEDULE_SALES_ORDER_STATUS: jobSchedules[?'SALES ORDER STATUS'] ?? syncSchedule
  SYNC_SCHEDULE_AUTO_CREATE_SALES_ORDERS: jobSchedules[?'AUTO CREATE SALES ORDERS'] ?? syncSchedule
  SYNC_BATCH_SIZE: syncBatchSize
  SYNC_MAX_PARALLEL: syncMaxParallel
  SYNC_TIME_BUDGET_SECONDS: syncTimeBudgetSeconds
  languageWorkers__node__arguments: '--max-old-space-size=${nodeWorker.maxOldSpaceSizeMB[string(instanceMemoryMB)]}'
}

module functionApp 'modules/function-app.bicep' = {
  name: 'functionApp'
  params: {
    location: location
    appName: appName
    tags: tags
    nodeVersion: nodeVersion
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    appSettings: appSettings
    enableAppServiceAuthentication: enableAppServiceAuthentication
    authClientId: checkedAuthClientId
    authTenantId: authTenantId
  }
}

module roles 'modules/role-assignments.bicep' = {
  name: 'roleAssignments'
  params: {
    principalId: functionApp.outputs.principalId
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
  }
}

output functionAppName string = functionApp.outputs.name
output apiBaseUrl string = 'https://${functionApp.outputs.defaultHostName}/api'
output healthUrl string = 'https://${functionApp.outputs.defaultHostName}/api/health'
output openApiUrl string = 'https://${functionApp.outputs.defaultHostName}/api/openapi.json'
output principalId string = functionApp.outputs.principalId
output keyVaultName string = keyVault.outputs.name
output keyVaultUrl string = keyVault.outputs.uri
output storageAccountName string = storage.outputs.name
output applicationInsightsName string = monitoring.outputs.applicationInsightsName
