'use strict';
// pywhisk's LoopBack-as-a-service catalog package: one zip, one action per operation (the
// action's `main` names the function). See lib/request.js for the two ways they are called.

// The connectors log through `debug`, settings included: never let a DEBUG variable enable it.
delete process.env.DEBUG;

const { operation } = require('./lib/respond');
const datasources = require('./lib/datasources');
const models = require('./lib/models');
const records = require('./lib/records');

const handlers = { ...datasources.operations, ...models.operations, ...records.operations };

// The path parameters of each operation's route (under /loopback); in a direct invocation they
// are params of the same names, and are not part of the body.
const DS = ['datasourceId'];
const RECORDS = ['tenant', 'modelId', 'modelName'];
const RECORD = [...RECORDS, 'recordId'];
const PATHS = {
  createDatasource: [], //                   POST   /datasources
  listDatasources: [], //                    GET    /datasources
  getDatasource: DS, //                      GET    /datasources/{datasourceId}
  updateDatasource: DS, //                   PUT    /datasources/{datasourceId}
  deleteDatasource: DS, //                   DELETE /datasources/{datasourceId}  (?force=true)
  datasourceStatus: DS, //                   GET    /datasources/{datasourceId}/status
  datasourceDefinitions: DS, //              GET    /datasources/{datasourceId}/definitions
  datasourceSchema: [...DS, 'table'], //     GET    /datasources/{datasourceId}/schemas/{table}
  createModel: [], //                        POST   /models
  listModels: [], //                         GET    /models
  getModel: ['modelId'], //                  GET    /models/{modelId}
  updateModel: ['modelId'], //               PUT    /models/{modelId}
  deleteModel: ['modelId'], //               DELETE /models/{modelId}
  createRecord: RECORDS, //                  POST   /{tenant}/{modelId}/{modelName}
  findRecords: RECORDS, //                   GET    /{tenant}/{modelId}/{modelName}  (?filter=)
  countRecords: RECORDS, //                  GET    /{tenant}/{modelId}/{modelName}/count  (?where=)
  findRecordById: RECORD, //                 GET    /{tenant}/{modelId}/{modelName}/{recordId}
  replaceRecord: RECORD, //                  PUT    /{tenant}/{modelId}/{modelName}/{recordId}
  patchRecord: RECORD, //                    PATCH  /{tenant}/{modelId}/{modelName}/{recordId}
  deleteRecord: RECORD, //                   DELETE /{tenant}/{modelId}/{modelName}/{recordId}
};

for (const [name, handler] of Object.entries(handlers)) {
  module.exports[name] = operation(name, PATHS[name], handler);
}
