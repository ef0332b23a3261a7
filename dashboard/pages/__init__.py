"""The dashboard's pages, one module each: a page's context builder(s) and
its own read-side queries, with what several pages share in common.py and
the plotly figures in dashboard/charts.py. Each page costs a fixed number of
queries, whatever the fleet's size or history (long windows are aggregated
in the database).

A new page is a url + a view + pages/<name>.py + a template + a test.
"""
