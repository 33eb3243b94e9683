"""training package of xner."""
