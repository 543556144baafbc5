"""What raters read: the five criteria as the paper defined them for its raters (supplement S2)."""

CRITERIA_TEXT = {  # criterion -> (title, instruction)
    "appearance": ("Appearance quality",
                   "Evaluate the clarity and visual appeal of the scene as it appears from any particular "
                   "viewpoint (ignoring, e.g., inconsistencies in appearance across different viewpoints). "
                   "Focus on the appearance of the foreground object and ignore the background of the video."),
    "structure": ("3D structure quality",
                  "Assess the detail and realism of the shape of the scene across the multiple viewpoints "
                  "shown in the video."),
    "motion": ("Motion quality",
               "Assess the realism of motion, including the amount of motion and how naturally the movements "
               "in the video are portrayed."),
    "text": ("Text alignment",
             "Determine how accurately each video reflects the content of the text prompt. Consider whether "
             "the key elements of the prompt are represented."),
    "overall": ("Overall preference",
                "State your overall preference between the two videos: which video, in your view, stands out "
                "as better based on appearance quality, 3D structure quality, motion quality and text "
                "alignment (i.e., overall quality)."),
}
