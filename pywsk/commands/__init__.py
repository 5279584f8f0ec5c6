"""pywsk command groups: `action`, `activation`, `namespace`, `property` (one module each, imported on demand)."""
