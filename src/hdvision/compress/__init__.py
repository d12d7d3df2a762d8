"""After training: smaller models from a trained one (structured pruning, distillation)."""
