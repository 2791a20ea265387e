"""The scheduler's work: predictions, their queues (targets) and the instances serving them."""
