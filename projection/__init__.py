"""projection package of xner."""
