"""Statistics engine for A/B/n tests: numpy and scipy only, no Django.

Inputs are per-arm sufficient statistics (``sufficient``); the entry point is
``analysis.analyse_experiment``. One module per concern:

``sufficient``        validated input sums per arm (mean/proportion and ratio metrics)
``arm_estimates``     per-arm estimate and variance (Bernoulli, sample variance, delta method)
``frequentist``       Welch t / Wald z comparison, absolute and relative effect
``cuped``             regression adjustment on a pre-period covariate
``srm``               sample ratio mismatch check
``sequential``        asymptotic confidence sequences and always-valid p-values
``bayesian``          posterior, chance to beat control, expected loss
``multiple_testing``  Holm and Benjamini-Hochberg adjusted p-values
``power``             sample size and minimum detectable effect
``decision``          ship / stop / keep running, with reasons
``analysis``          all of the above for a whole experiment
``serialisation``     results to plain JSON
"""
