"""Batch inference over archives: `frontwire predict INPUT... --output OUT`, locally or on Spark.

    sources / formats / tables / archives   every input format → documents, or error rows (nothing is dropped)
    engine                                  documents → paragraphs → chunks → predictions → shards, resumable
    runners                                 the model in this process (torch threads) or in worker processes
    shards                                  shard files + manifest (atomic writes), final merge
    models                                  model folder / models:/ URI / registry champion → local folder
    spark                                   the same job on Apache Spark (spark-submit usage in its docstring)
    settings                                configs/predict.yaml, validated
"""
