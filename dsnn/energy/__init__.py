"""Energy of a DSNN, two ways.

measured.py  what a run costs on this machine: CodeCarbon's offline tracker measures a
             training or inference phase (kWh, gCO2eq); depends on the hardware and load.
analytic.py  what one inference would cost: operation counts priced with Horowitz's 45 nm
             energies (µJ per image); deterministic, the sweep's energy objective.
"""
