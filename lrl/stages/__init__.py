"""The LRL stages, one module each: 0 student baseline, 1 teacher baseline, 2 bootstrap,
3 teacher with the final strategy, 3b transfer check (student with vs without the strategy)."""
