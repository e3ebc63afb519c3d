"""Training of service staff (培训): plans, attendance and assessment scores, shown beside
the team performance scorecards."""
