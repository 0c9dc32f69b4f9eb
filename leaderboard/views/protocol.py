"""The protocol and its statistics, in plain words (the project's own text, not submission text)."""

from __future__ import annotations

import streamlit as st

EXPLANATION = """
### What is measured
Each task has a fixed, versioned protocol: a patient-level split (no patient is in two splits), a fixed
downstream model and training recipe, and a fixed metric (macro F1 for classification, Dice for
segmentation). The downstream model is trained on the real training images alone (**real_only**) and on
the real images plus the generator's synthetic images at a given **ratio** (synthetic images per real
image). Every arm trains for the same number of steps with the same seeds, so the only difference
between arms is the data.

### Δ and its confidence intervals
**Δ** is the mean over seeds of (arm score - reference score), both trained with the same seed. A
generator is compared with real_only and, when it is a generator, also with classic augmentation at the
same ratio: a generator is only worth its compute if it beats that cheap, non-generative baseline.
Two 95% intervals are shown. The **t-interval over seeds** says how much Δ moves when the downstream
model is trained again (training noise). The **bootstrap over test patients** resamples whole patients
(all their images together) and says how much Δ would move on another test set of the same kind.

### p-values and corrections
p is a one-sided paired t-test over seeds, asking "does the synthetic data help?". With many
comparisons some look significant by chance, so each submission's p-values are corrected with Holm's
method (and Bonferroni, more conservative) across all of that submission's comparisons. Read a Holm p
below 0.05 as evidence that the generator helps on that task at that ratio.

### Trusting the numbers
Every submission stores the per-case test predictions of every arm and seed. `cxrbench validate`
recomputes every score, Δ, interval and p-value from them and the task's own labels, and checks the
task version, the split, the seeds, the ratios and that the generator was not trained on the test
split. CI runs it on every pull request. **Verified** generators have their code in this repository;
unverified ones come from third-party packages.
"""


def render(entries, table) -> None:
    st.title("Protocol and statistics")
    st.markdown(EXPLANATION)
