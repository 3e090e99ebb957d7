"""Kazbot: answers questions about a body of news articles, with citations."""
