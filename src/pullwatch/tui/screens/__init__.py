"""Screens: the dashboard's modal forms and result pages."""
