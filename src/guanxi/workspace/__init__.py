"""The customer 360 view: composes customers, shipments and history on one screen.

It sits above the domains it shows, so none of them has to import another to be displayed
together; later domains (tickets, interactions, loyalty) add their panels here.
"""
