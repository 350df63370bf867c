-- Every delivery asks whether anyone in its guild turned collecting off (issue 16): a partial
-- index holds only the opt-outs, so the answer is one probe however many members made a
-- presence choice.
CREATE INDEX member_privacy_opt_outs ON member_privacy (guild_id) WHERE collecting = 0;
