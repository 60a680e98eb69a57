"""Training shell: logging now; the GRPO trainer, configs and checkpoints land here."""
