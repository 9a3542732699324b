"""Reference figures for the A/B report's statistics, from statsmodels and scipy.

Reads a JSON list of cases on standard input, each
  {"c1": successes, "n1": trials, "c2": successes, "n2": trials, "observed": [...], "shares": [...]}
and prints the same list with the reference figures added. The Swift test
(StatisticsReferenceTests) compares its own figures with these.
"""
import json
import sys

from scipy import stats
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint, proportions_ztest

cases = json.load(sys.stdin)
for case in cases:
    c1, n1, c2, n2 = case["c1"], case["n1"], case["c2"], case["n2"]
    case["wilson1"] = list(proportion_confint(c1, n1, alpha=0.05, method="wilson"))
    case["wilson2"] = list(proportion_confint(c2, n2, alpha=0.05, method="wilson"))
    low, high = confint_proportions_2indep(c1, n1, c2, n2, method="newcomb", compare="diff", alpha=0.05)
    case["newcombe"] = [low, high]
    z, p = proportions_ztest([c1, c2], [n1, n2], value=0, alternative="two-sided")
    case["z"], case["p"] = float(z), float(p)
    observed = case["observed"]
    total = sum(observed)
    expected = [total * s / sum(case["shares"]) for s in case["shares"]]
    statistic, p_value = stats.chisquare(observed, f_exp=expected)
    case["chi2"], case["chi2p"] = float(statistic), float(p_value)
print(json.dumps(cases))
