"""model_cards package of xner."""
