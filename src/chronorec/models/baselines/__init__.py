"""models/baselines"""
