"""The Steam sync: who is playing, library reads, achievements, within the daily budget."""
