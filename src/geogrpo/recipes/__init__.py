"""Recipes: one YAML file per method and scale, and the only name -> object tables
(:mod:`geogrpo.recipes.build`)."""
