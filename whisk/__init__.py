"""What the controller and the invoker share: entities, the store and bus seams, messages, configuration."""
