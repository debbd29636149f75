"""models/sequential"""
