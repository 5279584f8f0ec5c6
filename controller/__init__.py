"""The controller: the REST API, authentication, entitlement, and the load balancer that hands activations to
invokers over the bus."""
