"""What the agent and the customer say in the labelled Mandarin calls (`callqa.callgen_zh`).

Every scripted event has several phrasings, drawn per call from a seeded RNG, so the detectors are
measured on varied wording rather than on one template. Each phrasing carries a phrase a Chinese
contact-centre QA team expects for that step (the lists in `config/phrases/zh.yaml` follow the
same practice): 标准开场白 with 工号/姓名 and 很高兴为您服务, 核实身份 (身份证后四位, 手机号,
户号), 请稍等 before a hold and 感谢您的耐心等待 after it, 复述确认, the solution, 满意度邀评 and
结束语; the agent's 禁语, and the customer's 投诉 and escalation (找你们领导).

Numbers are written in Chinese characters, read digit by digit where a Chinese speaker would
(工号八零二三), and kept under six digits so the stored text is not redacted as [DIGITS].
"""

from __future__ import annotations

# (company, surname of the agent, 工号 read digit by digit)
COMPANIES_ZH = [
    ("华信电力", "王", "八零二三"),
    ("东方电信", "李", "六一五七"),
    ("江南银行", "张", "三九零八"),
    ("顺达快递", "刘", "五二四六"),
    ("蓝天燃气公司", "陈", "七三一二"),
]

# the standard opening (标准开场白): company, 工号 or name, 很高兴为您服务, and the need question
GREETINGS_ZH = {
    "standard": [
        "您好，欢迎致电{company}，工号{id}，很高兴为您服务，请问有什么可以帮您？",
        "您好，{company}客服中心，{id}号客服为您服务，请问有什么可以帮您？",
        "您好，欢迎来电{company}，我是工号{id}，很高兴为您服务，请问您需要办理什么业务？",
        "您好，这里是{company}，我是客服小{surname}，工号{id}，请问有什么可以帮到您？",
    ],
    # friendly but without the 工号 / company: still a greeting, fails the name-and-company check
    "partial": [
        "您好，很高兴为您服务，请问有什么可以帮您？",
        "您好，请问有什么可以帮到您？",
    ],
    "absent": ["喂，说吧。", "喂，什么事？"],
}

# scenario: need, the customer's identity answer, explanation (解决方案), restatement (复述确认), reaction
SCENARIOS_ZH: dict[str, dict[str, list[str]]] = {
    "electricity": {
        "need": [
            "你好，我家这个月的电费比平时高了一倍，想问一下是怎么回事。",
            "你好，我想查一下上个月的电费，怎么一下子多了两百块。",
        ],
        "details": ["户号是三七二一九，户主叫王芳。", "户号三七二一九，身份证后四位是零八一五。"],
        "solution": [
            "原因是您家前两个月是估抄的，这个月按实际读数结算，所以把差额一起补上了。",
            "系统显示前两个月是估算电量，这次是按实际读数计算的，所以差额在这个月一起结清了。",
        ],
        "restate": [
            "我跟您确认一下，下个月起就按实际读数收费，不会再多收了，您看这样可以吗？",
            "也就是说这次是补缴差额，以后每月按实际用电计费，这样说您清楚吗？",
        ],
        "reaction": ["哦，原来是这样，那我明白了。", "好的，知道了。"],
    },
    "broadband": {
        "need": [
            "你好，我家宽带每天晚上都断网，我在家办公很受影响。",
            "你好，家里的网从昨天开始就连不上了。",
        ],
        "details": ["手机号后四位是六六八二。", "机主叫李强，手机号后四位六六八二。"],
        "solution": [
            "这是因为您所在小区的线路有故障，我已经帮您登记了报修，预计明天上午有师傅上门处理。",
            "主要是因为附近的光缆在维修，我已经帮您提交了报修单，维修人员会在二十四小时内联系您。",
        ],
        "restate": [
            "跟您确认一下，明天上午师傅上门，维修期间的费用由我们承担，您看可以吗？",
            "我复述一下，报修已经提交，明天上午上门处理，您同意吗？",
        ],
        "reaction": ["行，明天上午可以。", "好的，那我等师傅电话。"],
    },
    "bank": {
        "need": [
            "你好，我的卡里莫名其妙被扣了两百块钱，想问问是什么费用。",
            "你好，我收到短信说卡里扣了一笔年费，我不太清楚。",
        ],
        "details": ["身份证后四位是四四零七。", "后四位四四零七，预留手机号尾号九三五一。"],
        "solution": [
            "原因是您的卡本年度刷卡次数不足五次，系统自动收取了年费，我已经帮您申请了减免，三到五个工作日内会原路退回。",
            "这笔是年费，是由于本年度刷卡次数没有达到要求，已经为您提交了减免申请，退款会在五个工作日内到账。",
        ],
        "restate": [
            "我跟您确认一下，年费减免已经提交，退款原路退回您的卡里，您看这样可以吗？",
            "也就是说这笔年费会退给您，以后每年刷满五次就不收了，您清楚了吗？",
        ],
        "reaction": ["好的，那就好。", "明白了，谢谢。"],
    },
    "delivery": {
        "need": [
            "你好，我的快递说好周二到的，到现在还没收到。",
            "你好，我想查一下我的包裹，好几天都没有更新物流了。",
        ],
        "details": ["单号是七七三零一，收件人叫赵敏。", "收件人赵敏，手机号后四位是二五八零。"],
        "solution": [
            "原因是包裹的面单在中转站破损了，我已经帮您重新登记，预计明天送达。",
            "系统显示包裹卡在了中转站，已经给您重新安排了派送，明天上午会送到。",
        ],
        "restate": [
            "跟您确认一下，包裹明天上午送到，派送前快递员会给您打电话，您看这样可以吗？",
            "我复述一下，明天上午重新派送，送到前会电话联系您，您同意吗？",
        ],
        "reaction": ["好吧，明天可以。", "行，那我明天等着。"],
    },
}

# 核实身份
IDENTITY_ZH = [
    "好的，为了保障您的账户安全，需要先核实一下您的身份，请提供一下身份证后四位。",
    "好的，麻烦您报一下机主的姓名和手机号后四位。",
    "好的，请问您的户号是多少？我先核对一下您的信息。",
    "好的，先帮您做一下身份验证，请提供您的预留手机号后四位。",
]
EMPATHY_IDENTITY_ZH = [
    "非常抱歉给您带来不便，我先核实一下您的身份，请提供一下身份证后四位。",
    "理解您的心情，您先别着急，麻烦报一下机主的姓名和手机号后四位。",
]
# 请稍等 before the hold, 感谢您的耐心等待 after it
HOLD_ASK_ZH = [
    "好的，我帮您查询一下，请您稍等。",
    "麻烦您稍等片刻，我查一下系统记录。",
    "我需要查一下，请不要挂机，稍等一下。",
    "好的，请您稍候，我马上帮您查。",
]
HOLD_OK_ZH = ["好的。", "嗯，好。"]
HOLD_THANKS_ZH = ["感谢您的耐心等待。", "让您久等了。", "谢谢您的耐心等待，我这边查到了。", "感谢您的等待。"]
NO_THANKS_ZH = ["嗯，查到了。", "好，我看到了。"]
AFTER_DEAD_AIR_ZH = ["嗯，找到了。", "好，记录出来了。"]

# the customer upset: 投诉 markers, then escalation
ANGRY_NEED_ZH = [
    "我都打了三次电话了，一直没人处理，你们怎么回事？",
    "太过分了，等了好几天了都没人管，我很不满意！",
]
ANGRY_FOLLOWUP_ZH = ["什么破服务，一点用都没有！", "太离谱了，你们说话不算数！"]
ESCALATION_ZH = [
    "我要投诉，找你们领导来跟我说。",
    "叫你们经理来，我要投诉你们！",
    "我要找你们领导，这事必须给我一个说法。",
]
EMPATHY_ZH = ["非常抱歉，给您添麻烦了，我非常理解您的感受。", "真是抱歉让您着急了，请您放心，这件事我会跟进到底。"]
# 禁语
FORBIDDEN_ZH = [
    "这不是我的问题，你自己去查吧。",
    "我已经说过了，你听不懂吗？",
    "这个不归我管，我也没办法。",
    "你有完没完，爱办不办。",
]
AFTER_FORBIDDEN_ZH = ["你这什么态度啊。", "算了算了。"]

# overtalk: the customer cuts into the explanation, or the agent into the customer's story
INTERRUPTED_AGENT_ZH = ["我这边可以帮您预约维修，但是最早的时间要等到下周三下午才能安排"]
CUSTOMER_INTERRUPTS_ZH = ["等一下，我等不了那么久！", "不行，下周太晚了！"]
AGENT_AFTER_INTERRUPT_ZH = ["我理解，我已经帮您登记了加急，有空档会优先安排。"]
CUSTOMER_RAMBLES_ZH = ["我跟你说，上周我打过来的时候那个人说两天就能弄好，结果到现在还是一样，我又收到一条短信说"]
AGENT_INTERRUPTS_ZH = ["不好意思打断一下，我先核实一下您的信息。"]

# 满意度邀评, the further-help question and 结束语
SATISFACTION_ZH = [
    "请问您对我的服务满意吗？",
    "挂机后会有短信，请您对本次服务做出评价，谢谢。",
    "请问您的问题解决了吗？",
]
SATISFACTION_REPLY_ZH = ["满意，谢谢。", "解决了，谢谢你。"]
FURTHER_HELP_ZH = ["请问还有其他可以帮您的吗？", "请问还有其他业务需要办理吗？", "还有什么需要帮助的吗？"]
FURTHER_REPLY_ZH = ["没有了，谢谢。", "没有了。"]
CLOSING_ZH = ["感谢您的来电，祝您生活愉快，再见。", "感谢来电，祝您工作顺利，再见。", "好的，欢迎下次来电，再见。"]
NO_CLOSING_END_ZH = ["那就这样吧。"]
