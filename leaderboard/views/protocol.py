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

### Regimes
Every task has named training sizes (**regimes**): a **scarce** one, where real data is short and
synthetic data has room to help, and a **full** one. Each regime is its own comparison; results never
mix regimes.

### Δ, the interval and the verdict
**Δ** is the mean over seeds of (arm score - reference score), both trained with the same seed. A
generator is compared with real_only, with classic augmentation at the same ratio (a generator is only
worth its compute if it beats that cheap baseline) and, for a refined variant, with the generator it
refines. The **primary 95% interval** accounts for both sources of noise at once: training noise (how
Δ moves when the models are trained again, from the per-seed differences) and test-set noise (how Δ
would move on another test set, from a bootstrap over test patients), combined with Welch-Satterthwaite
degrees of freedom. Its two-sided test gives the **verdict**: *helps* or *hurts* when the corrected p is
below 0.05, else *no detectable difference*, shown with the **MDE**: the smallest |Δ| the test would
detect with 80% power. The seed-only t-interval, the patient-only bootstrap and the paper's one-sided
t-test are kept as secondary numbers.

### The correction family
The protocol fixes which comparisons an entry holds: every task of the suite it serves, every regime,
the default ratios, against every required reference. Holm's correction runs over exactly that family;
an entry that lacks a member is incomplete and does not validate.

### Trusting the numbers
Every submission stores the per-case test predictions of every arm and seed. `cxrbench validate`
recomputes every score, Δ, interval and p-value from them and the task's own labels, and checks the
task version, the split, the regimes, the seeds, the ratios, that the family is complete and that the
generator was not trained on the test split. CI runs it on every pull request.

Predictions can be written by hand, so CI also retrains (`cxrbench verify`) every cell it can reach with
the protocol's own code and requires the entry's predictions to match. Each entry shows how much CI
retrained: **recomputed** (every arm, the generator's code being in this repository), **spot-checked**
(the real-only baseline and the reference arms; the generator's own arm is the submitter's) or
**self-reported** (the task's data is not public, so CI holds no copy). Only recomputed entries are
ranked; the others are listed below them.
"""


def render(entries, table) -> None:
    st.title("Protocol and statistics")
    st.markdown(EXPLANATION)
