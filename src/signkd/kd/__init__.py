"""Knowledge distillation, from params.yaml to the loss:

  settings.py  KDSettings: the temperature, alpha, level weights and recipe one run distils with,
               resolved once from params (and the tune stage's best trial for keys marked `tuned`)
  recipes.py   the recipes (`logits`, `hkd`, `chain`): distill_student, train_assistant
  loss.py      HKDLoss: (1 - alpha) CTC + alpha T^2 KL(teacher || student) + sum_l w_l MSE_l
  targets.py   the teacher's outputs as training targets (stored, out-of-fold, or online)
  tuning.py    the Optuna search over the settings marked `tuned`
"""
