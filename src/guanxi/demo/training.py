"""Demo training (培训): a year of the service teams' monthly, quarterly and annual plans —
complaint-handling drills, communication skills, business knowledge, information
security, company culture — with attendance and assessment scores for the demo agents,
so the team performance scorecards show training beside the ticket figures.

Everything goes through the training service (audited), with the clock set to when each
step happened: a course is planned on the first of its month, its attendance recorded on
its day. Courses later this month are planned but not yet recorded.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from guanxi.analytics.kpi import shift
from guanxi.core import clock
from guanxi.security.models import User
from guanxi.tickets.teams import list_teams
from guanxi.training import service
from guanxi.training.enums import PlanPeriod, TrainingMode, TrainingTopic
from guanxi.training.models import TrainingCourse
from guanxi.training.schemas import AttendanceIn, AttendanceSheet, TrainingCourseCreate

T, M = TrainingTopic, TrainingMode
# The monthly courses, in turn (topic, mode, title, hours).
MONTHLY: list[tuple[TrainingTopic, TrainingMode, str, float]] = [
    (T.complaints, M.practice, "投诉处理情景演练", 2.0),
    (T.communication, M.offline, "电话沟通技巧与服务用语", 1.5),
    (T.business, M.online, "快件时效承诺与延误处理", 1.0),
    (T.security, M.online, "客户信息安全与保密", 1.0),
    (T.communication, M.practice, "安抚客户情绪与致歉话术", 2.0),
    (T.business, M.offline, "保价、理赔标准与赔付流程", 1.5),
]
QUARTERLY = (T.business, M.offline, "季度业务知识考核", 3.0)
ANNUAL = (T.culture, M.offline, "企业文化及价值观", 4.0)


def _weekday_on_or_after(day: date) -> date:
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def seed_training(session: Session, *, seed: int = 7, months: int = 12) -> int:
    """Plan ``months`` months of training and record what already happened (once: nothing
    happens when courses exist); returns how many courses were planned."""
    if session.scalar(select(func.count()).select_from(TrainingCourse)):
        return 0
    manager = session.scalar(select(User).where(User.username == "manager"))
    teams = list_teams(session)
    if manager is None or not teams:
        return 0
    rng = random.Random(seed)
    zone = ZoneInfo("Asia/Shanghai")
    today = clock.now().astimezone(zone).date()
    first = shift("month", today.replace(day=1), -(months - 1))
    plans: list[tuple[date, TrainingCourseCreate]] = []
    for n in range(months):
        month = shift("month", first, n)
        topic, mode, title, hours = MONTHLY[n % len(MONTHLY)]
        for team in teams:
            plans.append(
                (
                    month,
                    TrainingCourseCreate(
                        title=title,
                        topic=topic,
                        mode=mode,
                        planned_on=_weekday_on_or_after(month + timedelta(days=14)),
                        hours=hours,
                        team_id=team.id,
                        plan_period=PlanPeriod.month,
                    ),
                )
            )
        if month.month in (1, 4, 7, 10):
            topic, mode, title, hours = QUARTERLY
            plans.append(
                (
                    month,
                    TrainingCourseCreate(
                        title=f"{month.year}年第{(month.month - 1) // 3 + 1}季度{title}",
                        topic=topic,
                        mode=mode,
                        planned_on=_weekday_on_or_after(month + timedelta(days=24)),
                        hours=hours,
                        plan_period=PlanPeriod.quarter,
                    ),
                )
            )
        if month.month == 1 or n == 0:
            topic, mode, title, hours = ANNUAL
            plans.append(
                (
                    month,
                    TrainingCourseCreate(
                        title=f"{month.year}年度{title}",
                        topic=topic,
                        mode=mode,
                        planned_on=_weekday_on_or_after(month + timedelta(days=7)),
                        hours=hours,
                        plan_period=PlanPeriod.year,
                    ),
                )
            )
    for month, course_in in plans:
        with clock.frozen(datetime.combine(month, time(9, 0), zone).astimezone(UTC)):
            course = service.create_course(session, course_in=course_in, actor=manager)
        if course.planned_on > today:
            continue
        lines = []
        for line in service.roster(session, course):
            attended = rng.random() < 0.9
            score = round(min(100.0, max(55.0, rng.gauss(82, 8))), 0) if attended else None
            lines.append(AttendanceIn(user_id=line.user.id, attended=attended, score=score))
        if lines:
            with clock.frozen(
                datetime.combine(course.planned_on, time(18, 0), zone).astimezone(UTC)
            ):
                service.record_attendance(
                    session,
                    course_id=course.id,
                    sheet=AttendanceSheet(records=lines),
                    actor=manager,
                )
    return len(plans)
