"""`frontwire evaluate`: metrics with bootstrap intervals, comparisons, plots and an error-analysis report.

data.py / conll.py   evaluation inputs → records + per-record input issues
models.py            model specs (dir, runs:/, models:/, baseline:tfidf) → loaded scorers
topics.py            classifier metrics, calibration, co-occurrence, worst misses
entities.py          NER metrics, error breakdown, worst misses
bootstrap.py         vectorised paragraph-level (paired) bootstrap
paired.py            a candidate vs the champion on the fixed test split (`frontwire retrain`)
plots.py             PNGs;  report.py / markdown.py: HTML and Markdown reports
runner.py            the run: one or two models on one dataset → DIR;  tracking.py: the MLflow run
"""
