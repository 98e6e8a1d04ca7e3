"""Knowledge distillation: the settings one run resolves once and passes down (settings.py)."""
