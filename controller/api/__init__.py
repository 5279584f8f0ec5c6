"""One module per REST collection, as OpenWhisk's controller has one per collection."""
