"""Training: data loading, augmentation, the trainer loop, resumption and distributed runs."""
