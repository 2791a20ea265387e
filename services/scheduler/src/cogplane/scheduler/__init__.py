"""The scheduler: predictions and their queues, runner nodes and instance placement."""
