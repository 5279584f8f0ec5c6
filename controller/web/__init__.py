"""Web actions without HTTP plumbing: how a request becomes an action's arguments (`request`) and how an action's
result becomes a response (`response`), as OpenWhisk's `WebActions.scala` does. Both modules are pure functions
over plain data; `controller.api.web` connects them to aiohttp and the invoke path."""
