"""Training: advantage estimators, the PPO loss and the training loop."""
