// Log Analytics + workspace-based Application Insights with local (key) auth off: telemetry is sent with
// the app's managed identity (Entra ID), so the connection string is an address, not a credential.
param location string
param namePrefix string
param tags object

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${namePrefix}-logs'
  location: location
  tags: tags
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 30
  }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: '${namePrefix}-insights'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    DisableLocalAuth: true
  }
}

output applicationInsightsName string = insights.name
output applicationInsightsId string = insights.id
output connectionString string = insights.properties.ConnectionString
output workspaceId string = workspace.id
