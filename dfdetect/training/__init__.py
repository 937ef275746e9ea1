"""The training stage: the loader over the frame store, the recipes, the models and the trainer.

Keras is imported inside the modules that need it, after ``backend.select_backend`` has set the backend.
"""
