"""When will each user act next: a time-to-event model per behaviour, its baselines and metrics."""
