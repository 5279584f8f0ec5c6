"""pywsk command groups: `action`, `activation`, `api`, `namespace`, `package`, `property`, `rule`, `trigger`
(one module each, imported on demand)."""
