"""Hydra sweeper driving SMAC3 by ask/tell: multi-fidelity (Hyperband), multi-objective
(ParEGO) and both, as in "Towards Leveraging AutoML for Sustainable Deep Learning: A
Multi-Objective HPO Approach on Deep Shift Neural Networks" (sections 3-4).

Select it with `hydra/sweeper=smac_mfmo` (or smac_mf, smac_mo, random). Importing this
package imports neither SMAC nor W&B nor matplotlib; they load when a sweep starts.
"""
