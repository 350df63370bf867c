"""The one ingest path every source calls: dedupe, effects, normalize, milestones, feed."""
