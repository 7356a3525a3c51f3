"""Training stage: classifier, NER, TF-IDF baseline, MLflow tracking and registry (`frontwire train …`)."""
